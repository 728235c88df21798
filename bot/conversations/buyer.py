"""What a buyer sees and may press (commands, dialogs, claim-card actions)."""
