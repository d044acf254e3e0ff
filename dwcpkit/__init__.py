"""dwcpkit."""
