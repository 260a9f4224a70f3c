"""Drives the convlake simulator with Genesys's official Python SDK (purecloudplatformclientv2).

Usage: sdk_check.py API_URL CLIENT_ID CLIENT_SECRET INTERVAL [--expect-no-sta]

Every response must deserialize into the SDK's models with the fields convlake relies on set,
and no enum may come back as "outdated_sdk_version" (the SDK's marker for a value it does not
know). Prints one JSON object with what it saw; exits non-zero on the first mismatch.
"""

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import PureCloudPlatformClientV2 as pc
from PureCloudPlatformClientV2.rest import ApiException


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def unknown_enums(value, path=""):
    """Paths of the fields the SDK set to "outdated_sdk_version"."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in unknown_enums(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in unknown_enums(v, f"{path}[{i}]")]
    return [path] if value == "outdated_sdk_version" else []


def no_unknown_enums(model, what):
    bad = unknown_enums(model.to_dict())
    check(not bad, f"{what}: enum values the SDK does not know at {bad[:5]}")


def model(cls, **fields):
    """An SDK model with these attributes (the generated constructors take no arguments)."""
    m = cls()
    for k, v in fields.items():
        setattr(m, k, v)
    return m


def media_filter(media):
    return [
        model(
            pc.SegmentDetailQueryFilter,
            type="or",
            predicates=[
                model(
                    pc.SegmentDetailQueryPredicate,
                    type="dimension",
                    dimension="mediaType",
                    operator="matches",
                    value=m,
                )
                for m in media
            ],
        )
    ]


def main():
    url, client_id, secret, interval = sys.argv[1:5]
    client = pc.api_client.ApiClient(host=url).get_client_credentials_token(client_id, secret)
    check(client.access_token, "a token")
    analytics = pc.AnalyticsApi(client)
    sta = pc.SpeechTextAnalyticsApi(client)
    recordings_api = pc.RecordingApi(client)
    seen = {}

    # The synchronous details query, paged by number.
    query_ids = []
    page = 1
    while True:
        body = model(
            pc.ConversationQuery,
            interval=interval,
            order="asc",
            order_by="conversationStart",
            segment_filters=media_filter(["voice", "chat", "email", "message"]),
            paging=model(pc.PagingSpec, page_size=100, page_number=page),
        )
        resp = analytics.post_analytics_conversations_details_query(body)
        check(isinstance(resp, pc.AnalyticsConversationQueryResponse), "query response model")
        no_unknown_enums(resp, "query page")
        check(resp.total_hits is not None and resp.total_hits > 0, "totalHits")
        for c in resp.conversations or []:
            check(c.conversation_id and c.conversation_start is not None, "conversation ids and start")
            check(c.conversation_end is not None, "conversationEnd")
            check(c.participants, "participants")
            for p in c.participants:
                check(p.purpose in ("customer", "agent", "acd", "ivr"), f"purpose {p.purpose}")
                for s in p.sessions or []:
                    check(s.session_id and s.media_type, "sessionId and mediaType")
                    for seg in s.segments or []:
                        check(seg.segment_start is not None and seg.segment_type, "segments")
            query_ids.append(c)
        if not resp.conversations or page * 100 >= resp.total_hits:
            break
        page += 1
    seen["query"] = len(query_ids)

    # A details job: QUEUED -> PENDING -> FULFILLED, then cursor paging.
    job = analytics.post_analytics_conversations_details_jobs(
        model(
            pc.AsyncConversationQuery,
            interval=interval,
            segment_filters=media_filter(["voice", "chat", "email", "message"]),
        )
    )
    check(isinstance(job, pc.AsyncQueryResponse) and job.job_id, "jobId")
    states = []
    while True:
        status = analytics.get_analytics_conversations_details_job(job.job_id)
        check(isinstance(status, pc.AsyncQueryStatus), "job status model")
        no_unknown_enums(status, "job status")
        states.append(status.state)
        if status.state == "FULFILLED":
            break
        check(status.state in ("QUEUED", "PENDING"), f"state {status.state}")
        time.sleep(0.05)
    seen["states"] = states
    job_ids = []
    cursor = None
    pages = 0
    while True:
        kwargs = {"page_size": 40}
        if cursor:
            kwargs["cursor"] = cursor
        res = analytics.get_analytics_conversations_details_job_results(job.job_id, **kwargs)
        check(isinstance(res, pc.AnalyticsConversationAsyncQueryResponse), "results model")
        check(res.data_availability_date is not None, "dataAvailabilityDate")
        no_unknown_enums(res, "job results")
        job_ids.extend(c.conversation_id for c in res.conversations or [])
        pages += 1
        cursor = res.cursor
        if not cursor:
            break
    seen["job"] = len(job_ids)
    seen["job_pages"] = pages
    avail = analytics.get_analytics_conversations_details_jobs_availability()
    check(avail.data_availability_date is not None, "availability")

    # Voice: every recorded voice session (a callback's customer opens with a `callback`
    # session; a transferred call has one recorded customer and agent session per leg). Both
    # the singular transcripturl and the plural transcripturls, then the presigned documents,
    # de-duplicated by the communication they belong to.
    no_sta = "--expect-no-sta" in sys.argv[5:]
    transcripts = missing = gone = plural = callbacks = transfers = forbidden = duplicated = 0
    digital = {"chat": 0, "email": 0, "message": 0}
    archived = errored = 0
    for c in query_ids:
        customer = next(p for p in c.participants if p.purpose == "customer")
        first = customer.sessions[0]
        if first.media_type == "callback":
            check(first.callback_numbers and first.callback_scheduled_time is not None, "callback fields")
            check(not first.recording, "a callback session is not recorded")
            callbacks += 1
        recorded = [
            s
            for p in c.participants
            if p.purpose in ("customer", "agent")
            for s in p.sessions or []
            if s.media_type == "voice" and s.recording
        ]
        media = next((s.media_type for s in customer.sessions if s.media_type != "callback"), None)
        if media == "voice":
            legs = [s for s in customer.sessions if s.media_type == "voice"]
            check(legs and all(s.recording for s in legs), "the customer's call is recorded")
            if len(legs) > 1:
                transfers += 1
                check(
                    all(s.segments[-1].disconnect_type == "transfer" for s in legs[:-1]),
                    "earlier legs end in a transfer",
                )
            docs = {}
            statuses = set()
            for session in recorded:
                link = None
                try:
                    t = sta.get_speechandtextanalytics_conversation_communication_transcripturl(
                        c.conversation_id, session.session_id
                    )
                    check(not no_sta, "transcripturl without the STA permission")
                    check(isinstance(t, pc.TranscriptUrl) and t.url, "TranscriptUrl.url")
                    check("X-Amz-Expires=600" in t.url, "a 10-minute presigned link")
                    link = t.url
                except ApiException as e:
                    if not no_sta:
                        check(e.status == 404, f"transcripturl: {e.status}")
                        statuses.add(404)
                        continue
                    body = json.loads(e.body)
                    check(e.status == 403 and body["code"] == "missing.permissions", "403 missing.permissions")
                    check("speechAndTextAnalytics:data:view" in body["message"], "the permission is named")
                    forbidden += 1
                # The plural needs only recording permissions: the fallback for a 403.
                try:
                    urls = sta.get_speechandtextanalytics_conversation_communication_transcripturls(
                        c.conversation_id, session.session_id
                    )
                except ApiException as e:
                    check(e.status == 404 and link is None, f"transcripturls: {e.status}")
                    statuses.add(404)
                    continue
                check(isinstance(urls, pc.TranscriptUrls), "TranscriptUrls model")
                check(urls.conversation.id == c.conversation_id, "TranscriptUrls.conversation")
                check(urls.communication_id == session.session_id, "TranscriptUrls.communicationId")
                check(len(urls.urls) in (1, 2), "a SegmentUrl per recording")
                for u in urls.urls:
                    check(isinstance(u, pc.SegmentUrl) and u.recording.id and u.url, "SegmentUrl")
                if len(urls.urls) == 2:
                    # Two recordings of one session: two transcripts of the same phrases (a gone
                    # transcript is counted below, with the first link).
                    try:
                        a, b = (json.load(urllib.request.urlopen(u.url)) for u in urls.urls)
                        check(a["transcripts"][0]["phrases"] == b["transcripts"][0]["phrases"], "same phrases")
                        duplicated += 1
                    except urllib.error.HTTPError as e:
                        check(e.code == 404, f"a second recording's link: {e.code}")
                plural += 1
                link = link or urls.urls[0].url
                try:
                    with urllib.request.urlopen(link) as r:
                        raw = r.read()
                except urllib.error.HTTPError as e:
                    check(e.code == 404 and b"NoSuchKey" in e.read(), "a gone transcript")
                    statuses.add("gone")
                    continue
                doc = json.loads(raw)
                check(doc["conversationId"] == c.conversation_id, "document conversationId")
                check(
                    any(s.session_id == doc["communicationId"] for s in legs),
                    "document communicationId is a customer session",
                )
                if doc["communicationId"] in docs:
                    check(docs[doc["communicationId"]] == raw, "one recording, one document")
                docs[doc["communicationId"]] = raw
                phrases = doc["transcripts"][0]["phrases"]
                check(phrases, "phrases")
                for ph in phrases:
                    check(ph["participantPurpose"] in ("internal", "external"), "participantPurpose")
                    check(ph["startTimeMs"] >= doc["conversationStartTime"], "epoch ms")
                    check(isinstance(ph["text"], str), "text")
                for w in doc["participants"]:
                    check(w["participantPurpose"] in ("customer", "agent", "ivr", "acd"), "window purpose")
                    check(w["startTimeMs"] <= w["endTimeMs"], "window times")
            if docs:
                check(len(docs) == len(legs), "a document per leg")
                transcripts += 1
            elif "gone" in statuses:
                gone += 1
            else:
                missing += 1
        elif media in digital:
            recs = recordings_api.get_conversation_recordings(c.conversation_id, format_id="NONE")
            check(len(recs) == 1 and isinstance(recs[0], pc.Recording), "one Recording")
            r = recs[0]
            no_unknown_enums(r, "recording")
            if r.file_state == "ARCHIVED":
                check(r.archive_date is not None and r.archive_medium == "CLOUDARCHIVE", "archived stub")
                check(not r.session_id and not (r.transcript or r.email_transcript or r.messaging_transcript), "no text")
                archived += 1
                continue
            check(r.file_state == "AVAILABLE" and r.session_id, "fileState and sessionId")
            if r.recording_error_status:
                check(r.recording_error_status == "EMAIL_TRANSCRIPT_TOO_LARGE" and not r.email_transcript, "errored")
                errored += 1
                continue
            if media == "chat":
                check(r.media == "chat" and r.transcript, "chat transcript")
                for m in r.transcript:
                    check(isinstance(m, pc.ChatMessage) and m.body and m.participant_purpose, "ChatMessage")
            elif media == "message":
                check(r.media == "messaging" and r.messaging_transcript, "messagingTranscript")
                for m in r.messaging_transcript:
                    check(m.message_text and m.purpose and m.timestamp is not None, "RecordingMessagingMessage")
            else:
                check(r.media == "email" and r.email_transcript, "emailTranscript")
                for m in r.email_transcript:
                    check(m.text_body and m.pcFrom.email and m.time is not None, "RecordingEmailMessage")
            digital[media] += 1
    seen["transcripts"] = transcripts
    seen["missing"] = missing
    seen["gone"] = gone
    seen["plural"] = plural
    seen["callbacks"] = callbacks
    seen["transfers"] = transfers
    seen["archived"] = archived
    seen["errored"] = errored
    seen["digital"] = digital

    seen["forbidden"] = forbidden
    seen["duplicated"] = duplicated

    # Dictionary feedback: every page of the listing (two entries a page, so the nextPage key
    # of nextUri is followed), then each entry in full.
    entries = []
    key = None
    while True:
        kwargs = {"page_size": 2}
        if key:
            kwargs["next_page"] = key
        page = sta.get_speechandtextanalytics_dictionaryfeedback(**kwargs)
        check(isinstance(page, pc.DictionaryFeedbackEntityListing), "DictionaryFeedbackEntityListing")
        no_unknown_enums(page, "dictionary feedback listing")
        check(page.total is not None and page.page_size == 2, "total and pageSize")
        for e in page.entities or []:
            check(isinstance(e, pc.ListedDictionaryFeedback) and e.id and e.term and e.dialect, "ListedDictionaryFeedback")
            entries.append(e)
        if not page.next_uri:
            break
        query = urllib.parse.parse_qs(urllib.parse.urlparse(page.next_uri).query)
        key = query["nextPage"][0]
    check(len(entries) == page.total, "every entry once")
    phrases = 0
    for e in entries:
        full = sta.get_speechandtextanalytics_dictionaryfeedback_dictionary_feedback_id(e.id)
        check(isinstance(full, pc.DictionaryFeedback) and full.term == e.term, "DictionaryFeedback")
        no_unknown_enums(full, "dictionary feedback")
        check(full.source == "Manual" and 1.0 <= full.boost_value <= 10.0, "source and boostValue")
        check(full.created_by.id and full.date_created is not None, "createdBy and dateCreated")
        check(isinstance(full.sounds_like, list) and len(full.sounds_like) <= 10, "soundsLike")
        for p in full.example_phrases or []:
            check(isinstance(p, pc.DictionaryFeedbackExamplePhrase), "DictionaryFeedbackExamplePhrase")
            check(p.source == "Manual" and e.term.lower() in p.phrase.lower(), "a phrase with the term")
            phrases += 1
        english = full.dialect.split("-")[0] in ("en", "es")
        check(english == (not full.example_phrases), "phrases only outside English and Spanish")
    one_dialect = sta.get_speechandtextanalytics_dictionaryfeedback(dialect="en-US")
    check(all(e.dialect == "en-US" for e in one_dialect.entities), "the dialect filter")
    try:
        sta.get_speechandtextanalytics_dictionaryfeedback_dictionary_feedback_id("no-such-entry")
        check(False, "an unknown entry is 404")
    except ApiException as e:
        check(e.status == 404 and json.loads(e.body)["code"] == "not.found", "404 not.found")
    seen["dictionary_feedback"] = len(entries)
    seen["dictionary_feedback_phrases"] = phrases
    seen["dictionary_feedback_en_us"] = len(one_dialect.entities)

    # An expired token is refused with 401 bad.credentials.
    client.access_token = "expired-or-revoked"
    try:
        analytics.get_analytics_conversations_details_jobs_availability()
        check(False, "a bad token is refused")
    except ApiException as e:
        check(e.status == 401 and json.loads(e.body)["code"] == "bad.credentials", "401 body")
    print(json.dumps(seen, sort_keys=True))


if __name__ == "__main__":
    main()
