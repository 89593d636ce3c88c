"""Time as fleet takes it: the injected clock (:mod:`.clock`) and work run soon after a
change, at most once an interval (:mod:`.debounce`)."""
