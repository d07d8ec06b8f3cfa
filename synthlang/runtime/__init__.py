"""The runtime: executes a Plan on an engine, record by record, exactly and resumably."""
