# Les dates de la console portent leur fuseau horaire (TIME_ZONE) : une heure n'est jamais ambiguë.
DATETIME_FORMAT = "j F Y, H:i T"
SHORT_DATETIME_FORMAT = "d/m/Y H:i T"
