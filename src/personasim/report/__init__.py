"""What people read: the HTML report and JUnit files."""
