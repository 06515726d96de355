-- at-most-once: read and delete in one statement (the same work as raw_pop.sql)
SELECT * FROM ku9.pop('@Q@', @N@);
