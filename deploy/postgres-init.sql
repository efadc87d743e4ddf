CREATE DATABASE yimen_catalog;
CREATE DATABASE yimen_identity;
CREATE DATABASE yimen_intake;
CREATE DATABASE yimen_workflow;
CREATE DATABASE yimen_datashare;
CREATE DATABASE yimen_efficacy;
CREATE DATABASE yimen_notify;
