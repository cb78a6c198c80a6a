"""CREATE (Cross-REpresentation Aligned Transfer Encoders); filled in by the CREATE issue."""
