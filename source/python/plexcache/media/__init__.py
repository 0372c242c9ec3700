"""The only code that changes media files (tests/test_media_rule.py holds the rule): the journaled copy to
the pool and move back (`mover`, written ahead to `journal`, copied by `fastcopy`), the lanes that run many at
once (`lanes`), the single-step tidying of copies proved redundant (`tidy`), and what they share: the
operations and their errors (`ops`), filesystem steps (`fs`), the open-file check (`openfiles`) and the
crash points tests kill the process at (`crash`)."""
