"""The host driver of hss_system: register offsets (regmap.py, generated) and the driver."""
