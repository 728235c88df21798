"""What a staff sees and may press (commands, dialogs, claim-card actions)."""
