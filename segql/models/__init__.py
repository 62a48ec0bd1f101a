"""Predictive scores: `CREATE MODEL ... PREDICT <condition> WITHIN '<interval>'`, trained from the
database's own history (`segql train`) and scored in SQL as `score('<model>')`."""
