"""Sequential interaction data: ``Sequences`` and parsers (core), leave-one-out and windows (loo),
training rows per model family (examples), CTR rows from sequences (ctr), the dataset builder
(dataset) and the user's own files (sequence_file, registered as ``sequence_file``)."""
