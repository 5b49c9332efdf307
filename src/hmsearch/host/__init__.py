"""Tools for the host: chapters, show notes, audio clips of quotes, player-ready subtitles."""
