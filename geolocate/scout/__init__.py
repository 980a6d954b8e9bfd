"""Scout-sniper data: multi-view locations (grouped from a manifest or imported), regions, split."""
