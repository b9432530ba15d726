//! The plan model: rows, diagnosis codes, fingerprints and the CSV format.
