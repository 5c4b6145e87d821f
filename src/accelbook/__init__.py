"""accelbook: the library behind the book."""
