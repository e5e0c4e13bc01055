"""Safe reissue of recycled numbers (二次号码焕新) and the CAMARA Number Recycling check."""
