# Dates in the console carry their time zone (TIME_ZONE), so a time is never ambiguous.
DATETIME_FORMAT = "N j, Y, H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
