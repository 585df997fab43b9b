"""Jobs: what a job is (spec), its record and the one board that changes it, the queue, the journal that
keeps jobs across restarts, admission, ETAs, retry/regenerate, and the model worker that runs them."""
