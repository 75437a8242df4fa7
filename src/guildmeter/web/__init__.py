"""The web dashboard: one page per guild for its moderators, behind Discord login.

``app`` holds the routes, ``auth`` the OAuth2 login, sessions and live moderator checks,
``queries`` the calls into `guildmeter.reports`, ``server`` the ways to run it (``guildmeter
serve``, or inside the bot). Nothing here runs SQL.
"""
