"""Model catalog, preparation (registry package → OpenVINO IR → INT8), runtime wrappers, evaluation."""
