"""OAuth 2.0 for partner connections: tokens obtained and refreshed with requests-oauthlib."""
