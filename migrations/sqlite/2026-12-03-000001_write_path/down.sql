DROP TABLE instances;
DROP TABLE detection_facts;
