from plexcache.cli import main

main()
