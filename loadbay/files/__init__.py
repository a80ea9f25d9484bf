"""Files: the object store (local folder or S3) and the file-job runner."""
