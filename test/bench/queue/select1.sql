-- the round-trip floor: one prepared statement that does nothing
SELECT 1;
