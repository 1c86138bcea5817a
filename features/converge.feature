Feature: Never miss a change
  main converges to exactly what MoneyWorks holds when the server clock misbehaves, records
  are deleted, or a full sync is asked for.

  Scenario: The clock steps back one hour and edits made after the step still arrive
    Given a MoneyWorks document with 5 names
    And mwsync has polled
    When the MoneyWorks clock steps back 3600 seconds
    And 3 names are edited in MoneyWorks
    And mwsync polls
    Then the poll succeeds
    And a clock regression event was published
    And main holds exactly the records MoneyWorks holds
    And no marker on main is ahead of the MoneyWorks clock

  Scenario: The clock jumps a day forward, edits happen, it is corrected back, more edits
    Given a MoneyWorks document with 5 names
    And mwsync has polled
    When the MoneyWorks clock steps forward 86400 seconds
    And 2 names are edited in MoneyWorks
    And mwsync polls
    And the MoneyWorks clock steps back 86390 seconds
    And 2 names are edited in MoneyWorks
    And mwsync polls
    Then the poll succeeds
    And a clock regression event was published
    And main holds exactly the records MoneyWorks holds
    And no marker on main is ahead of the MoneyWorks clock

  Scenario: A table that fails right after the clock steps back, then a restart, still re-reads from before the step
    Given a MoneyWorks document with 5 names
    And mwsync has polled
    When the MoneyWorks clock steps back 30 seconds
    And 2 names are edited in MoneyWorks
    And MoneyWorks refuses export 2 of the next poll until retries run out
    And mwsync polls
    Then the poll reports that Name failed with "licensed"
    When mwsync restarts
    And the MoneyWorks clock moves on 600 seconds
    And mwsync polls
    Then the poll succeeds
    And main holds exactly the records MoneyWorks holds

  Scenario: A step back with nothing edited is committed, so a restart does not re-read the day again
    Given a MoneyWorks document with 5 names
    And mwsync has polled
    When the MoneyWorks clock steps back 600 seconds
    And mwsync polls
    Then the poll succeeds
    And a clock regression event was published
    And the last commit on main says "The MoneyWorks clock reads"
    And no marker on main is ahead of the MoneyWorks clock
    When mwsync restarts
    And mwsync polls
    Then the poll made 1 requests
    And main holds exactly the records MoneyWorks holds

  Scenario: A small NTP correction of a few seconds loses nothing
    Given a MoneyWorks document with 5 names
    And mwsync has polled
    When 1 names are edited in MoneyWorks
    And mwsync polls
    And the MoneyWorks clock steps back 4 seconds
    And 2 names are edited in MoneyWorks
    And mwsync polls
    Then the poll succeeds
    And main holds exactly the records MoneyWorks holds

  Scenario: A poll that fails part-way loses nothing it had already read
    Given a MoneyWorks document with 4 names, 2 accounts, 1 products, 1 jobs and 2 transactions
    # Every table is exported, so the poll can fail after some of them.
    And MoneyWorks does not know the function Find
    And mwsync has polled
    When 2 names are edited in MoneyWorks
    And MoneyWorks refuses export 5 of the next poll until retries run out
    And mwsync polls
    Then the poll fails
    When mwsync polls
    Then the poll succeeds
    And main holds exactly the records MoneyWorks holds

  Scenario: A look-back finds records that became visible after their stamp
    Given a MoneyWorks document with 3 names
    And the look-back is 10 seconds
    And mwsync has polled
    When a name stamped 5 seconds before the last poll appears in MoneyWorks
    And mwsync polls
    Then main holds exactly the records MoneyWorks holds

  Scenario: A deleted record is removed from main by the fingerprint scan
    Given a MoneyWorks document with 10 names
    And the fingerprint scan runs every 60 seconds
    And mwsync has polled
    When 1 names are deleted in MoneyWorks
    And the MoneyWorks clock moves on 120 seconds
    And mwsync polls
    Then the poll succeeds
    And main holds exactly the records MoneyWorks holds
    And the last commit on main says "deleted"

  Scenario: A record whose stamp is older than the marker is found by the fingerprint scan
    Given a MoneyWorks document with 6 names
    And the fingerprint scan runs every 60 seconds
    And mwsync has polled
    When name 2 is changed in MoneyWorks with a stamp from the day before
    And the MoneyWorks clock moves on 120 seconds
    And mwsync polls
    Then main holds exactly the records MoneyWorks holds

  Scenario: A half-broken server cannot empty the repository
    Given a MoneyWorks document with 10 names
    And the fingerprint scan runs every 60 seconds
    And mwsync has polled
    When 6 names are deleted in MoneyWorks
    And the MoneyWorks clock moves on 120 seconds
    And mwsync polls
    Then the poll fails with "Nothing was deleted"
    And main still holds 10 Name records

  Scenario: A full sync in apply mode commits the differences
    Given a MoneyWorks document with 8 names
    And mwsync has polled
    When name 3 is changed in MoneyWorks with a stamp from the day before
    And 1 names are deleted in MoneyWorks
    And a full sync runs in apply mode
    Then the full sync found 2 differences
    And main holds exactly the records MoneyWorks holds
    And the sync state on main records the full sync

  Scenario: A full sync in check mode commits nothing and lists every difference
    Given a MoneyWorks document with 8 names
    And mwsync has polled
    When name 3 is changed in MoneyWorks with a stamp from the day before
    And a full sync runs in check mode
    Then the full sync fails listing name 3 with its server and main values
    And main did not move

  Scenario: A writer requests a full sync through the repo config
    Given a MoneyWorks document with 8 names
    And mwsync has polled
    When name 3 is changed in MoneyWorks with a stamp from the day before
    And a writer requests a full sync "2026-01-05 audit" on changes
    And mwsync polls
    Then main holds exactly the records MoneyWorks holds
    And the sync state on main records the full sync "2026-01-05 audit"
