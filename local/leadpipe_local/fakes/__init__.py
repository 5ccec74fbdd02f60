"""Local fakes of the third-party APIs leadpipe calls (providers, HubSpot). Development and tests only."""
