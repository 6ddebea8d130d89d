"""Covid follow-up: a case per Covid-positive or suspected discharge, reminders, closure."""
