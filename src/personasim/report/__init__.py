"""What people read: the HTML report, the local viewer over many runs (`personasim view`), SQL over runs, JUnit files."""
