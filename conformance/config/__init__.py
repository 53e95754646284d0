"""What a run is configured by, all of it data: the parameter catalogue (data/parameters.toml), the
target files (targets/*.toml, shipped as conformance.target_files), the expectations
(expectations/<target>.toml), and the migration mapping (data/migration.toml)."""
