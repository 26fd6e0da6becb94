-- Plans that do not depend on statistics.
--
-- Every point lookup of a session names its full primary key (application_id, id). With
-- application_id leading, the subject index also matched such a lookup (on its first column
-- only), and a generic plan made while the table was empty or never analysed could pick it
-- and then walk every session of the application (docs/benchmarks.md, finding 2). Leading
-- with the subject's id, the index only matches a lookup by subject, which is what it is for:
-- listing one subject's sessions, newest first.
drop index sessions_by_subject;
create index sessions_by_subject on sessions (subject_id, subject_kind, application_id, id desc);
