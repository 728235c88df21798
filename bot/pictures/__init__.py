"""Pictures the bot sends: the dashboard's charts."""
