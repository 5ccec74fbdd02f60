"""leadpipe's local runtime and command line. Development only: never shipped to Lambda."""
