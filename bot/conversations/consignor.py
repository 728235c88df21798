"""What a consignor sees and may press (commands, dialogs, claim-card actions)."""
