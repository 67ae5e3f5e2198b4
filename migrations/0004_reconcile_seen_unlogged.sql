-- What a reconcile run saw is needed only while the run lasts, and a crash ends the run (the next
-- one closes it as interrupted and clears the table). So it is kept out of the WAL: marking a
-- hundred thousand objects seen costs no WAL, and a run that finds nothing changed writes none
-- for it.
alter table stack_sync.reconcile_seen set unlogged;
