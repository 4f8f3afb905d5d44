"""One module per ``posevid`` subcommand; each has ``register(subparsers, formatter_class)``."""
