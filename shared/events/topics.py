"""Topic names and the partition-key rule, defined once.

Rule: the Kafka message key is the event's ``subject`` (``Event.key()``): the site id for
site and stage events, the resident pseudonym for observation and score events. Kafka's
partitioner (and the memory bus's) maps a key to one partition, so all events of one site or
one resident are consumed in publish order.
"""

SITES = "adoption.sites"
STAGES = "adoption.stages"
OBSERVATIONS = "ingest.observations"
SCORES = "scoring.scores"

ALL_TOPICS = (SITES, STAGES, OBSERVATIONS, SCORES)
