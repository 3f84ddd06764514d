"""The front door's web layer: its own pages (:mod:`.pages`), the protections every response gets
(:mod:`.security`), forwarding to Panel and Voila (:mod:`.proxy`), and the small modules Panel and
Voila load to accept only what the front door forwards (:mod:`.panel_auth`, :mod:`.voila_auth`)."""
