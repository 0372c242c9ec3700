"""plexcache-r: keeps the media Plex users are about to watch on the Unraid cache pool."""

__version__ = "0.1.0"
