"""The US catalog (scout-sniper): one area per contiguous state plus DC, batched by census division.

Each area is the state's largest or best-covered city; `region` is the state's two-letter code,
the region label the scout-sniper model learns. Importing this module registers
`CATALOGS["us"]` (done lazily by `catalog("us")`, so the French-only path never loads it).
"""

from __future__ import annotations

from geolocate.acquire.catalog import CATALOGS, Area, Kind, _area

# Batch = census division: 01 New England, 02 Middle Atlantic, 03 East North Central, 04 West North
# Central, 05 South Atlantic, 06 East South Central, 07 West South Central, 08 Mountain, 09 Pacific.
_US_ROWS: list[tuple[str, str, float, float, Kind, str]] = [
    ("Hartford", "CT", 41.7658, -72.6734, "medium", "01"), ("Portland ME", "ME", 43.6591, -70.2568, "medium", "01"),
    ("Boston", "MA", 42.3601, -71.0589, "metropolis", "01"), ("Manchester", "NH", 42.9956, -71.4548, "medium", "01"),
    ("Providence", "RI", 41.8240, -71.4128, "medium", "01"), ("Burlington", "VT", 44.4759, -73.2121, "rural", "01"),
    ("Newark", "NJ", 40.7357, -74.1724, "medium", "02"), ("New York", "NY", 40.7128, -74.0060, "metropolis", "02"),
    ("Philadelphia", "PA", 39.9526, -75.1652, "metropolis", "02"),
    ("Chicago", "IL", 41.8781, -87.6298, "metropolis", "03"), ("Indianapolis", "IN", 39.7684, -86.1581, "metropolis", "03"),
    ("Detroit", "MI", 42.3314, -83.0458, "metropolis", "03"), ("Columbus", "OH", 39.9612, -82.9988, "metropolis", "03"),
    ("Milwaukee", "WI", 43.0389, -87.9065, "medium", "03"),
    ("Des Moines", "IA", 41.5868, -93.6250, "medium", "04"), ("Wichita", "KS", 37.6872, -97.3301, "medium", "04"),
    ("Minneapolis", "MN", 44.9778, -93.2650, "metropolis", "04"), ("St. Louis", "MO", 38.6270, -90.1994, "metropolis", "04"),
    ("Omaha", "NE", 41.2565, -95.9345, "medium", "04"), ("Fargo", "ND", 46.8772, -96.7898, "rural", "04"),
    ("Sioux Falls", "SD", 43.5446, -96.7311, "rural", "04"),
    ("Wilmington", "DE", 39.7391, -75.5398, "medium", "05"), ("Washington", "DC", 38.9072, -77.0369, "metropolis", "05"),
    ("Miami", "FL", 25.7617, -80.1918, "metropolis", "05"), ("Atlanta", "GA", 33.7490, -84.3880, "metropolis", "05"),
    ("Baltimore", "MD", 39.2904, -76.6122, "metropolis", "05"), ("Charlotte", "NC", 35.2271, -80.8431, "metropolis", "05"),
    ("Columbia", "SC", 34.0007, -81.0348, "medium", "05"), ("Richmond", "VA", 37.5407, -77.4360, "medium", "05"),
    ("Charleston", "WV", 38.3498, -81.6326, "rural", "05"),
    ("Birmingham", "AL", 33.5186, -86.8104, "medium", "06"), ("Louisville", "KY", 38.2527, -85.7585, "metropolis", "06"),
    ("Jackson", "MS", 32.2988, -90.1848, "medium", "06"), ("Nashville", "TN", 36.1627, -86.7816, "metropolis", "06"),
    ("Little Rock", "AR", 34.7465, -92.2896, "medium", "07"), ("New Orleans", "LA", 29.9511, -90.0715, "metropolis", "07"),
    ("Oklahoma City", "OK", 35.4676, -97.5164, "metropolis", "07"), ("Houston", "TX", 29.7604, -95.3698, "metropolis", "07"),
    ("Phoenix", "AZ", 33.4484, -112.0740, "metropolis", "08"), ("Denver", "CO", 39.7392, -104.9903, "metropolis", "08"),
    ("Boise", "ID", 43.6150, -116.2023, "medium", "08"), ("Billings", "MT", 45.7833, -108.5007, "medium", "08"),
    ("Las Vegas", "NV", 36.1699, -115.1398, "metropolis", "08"), ("Albuquerque", "NM", 35.0844, -106.6504, "medium", "08"),
    ("Salt Lake City", "UT", 40.7608, -111.8910, "metropolis", "08"), ("Cheyenne", "WY", 41.1400, -104.8202, "rural", "08"),
    ("Los Angeles", "CA", 34.0522, -118.2437, "metropolis", "09"), ("Portland", "OR", 45.5152, -122.6784, "metropolis", "09"),
    ("Seattle", "WA", 47.6062, -122.3321, "metropolis", "09"),
]

US: tuple[Area, ...] = tuple(_area(name, lat, lon, kind, batch, state) for name, state, lat, lon, kind, batch in _US_ROWS)

CATALOGS["us"] = US
