-- One index fewer to write on every webhook (see BENCHMARKS.md, "Cost per event"). Nothing
-- looks messages up by source time: replay selects by arrival time and sorts what it found.
drop index stack.webhook_events_source_time_idx;
