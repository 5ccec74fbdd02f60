"""Routes of the HTTP API function, one router per resource."""
