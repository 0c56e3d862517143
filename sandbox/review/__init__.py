"""Reading runs back: the terminal tables (`display`), the per-model profile (`profile`), token
usage (`usage`), coordination attempts (`attempts`), the event log's views (`logs`), the HTML and
Markdown report (`report`) and exports to other tools (`export`)."""
