"""roamclear's data contracts: OCPI wire models (`schemas.ocpi`), hub objects
(`schemas.hub`), event envelopes (`schemas.events`), validation errors
(`schemas.validation`), exact JSON output (`schemas.wire`) and the generated JSON Schemas
(`schemas.export`, files in schemas/json/). Imports no Kafka, HTTP or database code."""
