from loadbay.cli import app

app()
