-- The newest stored copy of every conversation: a conversation fetched again (overlapping
-- windows, late updates) lives in several snapshots, and only the one recorded last counts.
CREATE VIEW current_copies AS
SELECT conversation_id, snapshot
FROM (
    SELECT c.conversation_id,
           c.snapshot,
           ROW_NUMBER() OVER (
               PARTITION BY c.conversation_id
               ORDER BY o.seq DESC, c.snapshot DESC
           ) AS copy_rank
    FROM (SELECT DISTINCT conversation_id, snapshot FROM raw) AS c
    JOIN snapshot_order AS o ON o.snapshot = c.snapshot
) AS ranked
WHERE copy_rank = 1
