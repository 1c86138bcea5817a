Feature: Pull MoneyWorks records into git main
  mwsync polls MoneyWorks for records modified since its marker and commits each record as
  one canonical XML file on main, with the marker in the same commit.

  Scenario Outline: A first sync writes every record, the config and the marker together
    Given a MoneyWorks document with 6 names, 4 accounts, 3 products, 2 jobs and 5 transactions
    And the repository is <repository>
    When mwsync polls
    Then the poll succeeds
    And main holds exactly the records MoneyWorks holds
    And every commit that changes records also changes the sync state
    And main holds the repo config

    Examples:
      | repository             |
      | in memory              |
      | a real bare repository |
      | served over HTTP with an API key |

  Scenario: An edit in MoneyWorks becomes a commit with a field summary and an event
    Given a MoneyWorks document with 3 names
    And the name "ACME" with phone "555 0100" exists in MoneyWorks
    And the status server is listening
    And mwsync has polled
    When the phone of name "ACME" is changed to "555 0199" in MoneyWorks
    And mwsync polls
    Then the poll succeeds
    And the last commit on main says 'Name ACME updated: phone "555 0100" → "555 0199"'
    And an event on /events reports that Name "ACME" changed field "phone"

  Scenario: 500 records sharing one timestamp are all read with pages of 10
    Given the page size is 10
    And 500 names in MoneyWorks share one modification time
    When mwsync polls
    Then the poll succeeds
    And main holds exactly the records MoneyWorks holds

  Scenario: Edits made while mwsync is paging are not lost
    Given the page size is 10
    And a MoneyWorks document with 45 names
    And MoneyWorks edits name 3 and creates name "LATE" while mwsync reads page 2
    When mwsync polls
    Then the poll succeeds
    And main holds exactly the records MoneyWorks holds

  Scenario: A record XML 1.0 cannot carry is quarantined while other tables and a write-back go on
    Given a MoneyWorks document with 3 names, 2 accounts, 0 products, 0 jobs and 0 transactions
    And the name "ACME" with phone "555 0100" exists in MoneyWorks
    And the name "BETA" with phone "555 0200" exists in MoneyWorks
    And mwsync has polled
    And a writer sets the phone of name "BETA" to "555 0299" on changes
    When the phone of name "ACME" is changed to hold control character 7 in MoneyWorks
    And the description of account 1 is changed to "Renamed while ACME is broken" in MoneyWorks
    And mwsync polls
    Then the poll succeeds
    And Name "ACME" is quarantined on main because "field <phone> holds U+0007"
    And the writer's commit is in main
    And MoneyWorks holds "555 0299" as the phone of name "BETA"
    And main holds all other records as MoneyWorks holds them
    When the phone of name "ACME" is changed to "555 0101" in MoneyWorks
    And mwsync polls
    Then the poll succeeds
    And nothing is quarantined on main
    And main holds exactly the records MoneyWorks holds

  Scenario: A quarantined record fixed behind the marker is filed by the next fingerprint scan
    Given a MoneyWorks document with 3 names
    And the fingerprint scan runs every 60 seconds
    And the name "ACME" with phone "555 0100" exists in MoneyWorks
    And mwsync has polled
    When the phone of name "ACME" is changed to hold control character 7 in MoneyWorks
    And mwsync polls
    Then Name "ACME" is quarantined on main because "field <phone> holds U+0007"
    When name "ACME" is fixed in MoneyWorks with a stamp from the day before
    And mwsync polls
    Then Name "ACME" is quarantined on main because "field <phone> holds U+0007"
    When the MoneyWorks clock moves on 120 seconds
    And mwsync polls
    Then nothing is quarantined on main
    And main holds exactly the records MoneyWorks holds

  Scenario: An [ERROR] answer to an export fails that table alone, and is retried
    Given a MoneyWorks document with 3 names, 2 accounts, 0 products, 0 jobs and 0 transactions
    And mwsync has polled
    When 1 names are edited in MoneyWorks
    And the description of account 1 is changed to "Edited" in MoneyWorks
    And MoneyWorks answers the next 4 exports with an [ERROR] reply
    And mwsync polls
    Then the poll reports that Account failed with "MoneyWorks could not carry out the `export`: it answered [ERROR]"
    And a retry of "exporting Account" was published
    And main holds every Name record as MoneyWorks holds it
    When mwsync polls
    Then the poll succeeds
    And main holds exactly the records MoneyWorks holds

  Scenario: Licence-limit errors are retried and nothing is lost or duplicated
    Given a MoneyWorks document with 12 names
    And MoneyWorks answers the next 2 requests with licence_limit
    When mwsync polls
    Then the poll succeeds
    And main holds exactly the records MoneyWorks holds
    And main has exactly 1 commit

  Scenario Outline: A malformed reply makes no commit
    Given a MoneyWorks document with 4 names
    And MoneyWorks answers the next 4 requests with <fault>
    When mwsync polls
    Then the poll fails
    And main did not move
    When mwsync polls
    Then the poll succeeds
    And main holds exactly the records MoneyWorks holds

    Examples:
      | fault         |
      | malformed_xml |
      | truncate      |

  Scenario: An idle poll commits nothing and costs one request
    Given a MoneyWorks document with 5 names, 2 accounts, 2 products, 1 jobs and 3 transactions
    And mwsync has polled
    When mwsync polls
    Then the poll succeeds
    And main did not move
    And the poll made 1 requests

  Scenario: An edit found by the one-request probe costs one export of its table
    Given a MoneyWorks document with 5 names, 2 accounts, 2 products, 1 jobs and 3 transactions
    And the name "ACME" with phone "555 0100" exists in MoneyWorks
    And mwsync has polled
    When the phone of name "ACME" is changed to "555 0199" in MoneyWorks
    And mwsync polls
    Then the poll succeeds
    And the last commit on main says "phone"
    And the poll made 2 requests

  Scenario: A server that refuses Find() is polled with one export per table plus one clock read
    Given a MoneyWorks document with 5 names, 2 accounts, 2 products, 1 jobs and 3 transactions
    And the name "ACME" with phone "555 0100" exists in MoneyWorks
    And MoneyWorks does not know the function Find
    And mwsync has polled
    # The first idle poll tries the probe once, is refused, and falls back.
    And mwsync has polled
    When the phone of name "ACME" is changed to "555 0199" in MoneyWorks
    And mwsync polls
    Then the poll succeeds
    And the last commit on main says "phone"
    And the poll made 6 requests

  Scenario: A first sync whose last checkpoint is full leaves nothing to redo after a restart
    Given checkpoints of 10 records
    And the page size is 10
    And a MoneyWorks document with 40 names
    And mwsync has polled
    When mwsync restarts
    And mwsync polls
    Then the poll succeeds
    And main did not move
    And the poll made 1 requests

  Scenario: Checkpoints commit at most the configured number of records
    Given checkpoints of 10 records
    And the page size is 10
    And a MoneyWorks document with 35 names
    When mwsync polls
    Then the poll succeeds
    # 35 names and the generator's 10 accounts: four full checkpoints and the last 5.
    And main has exactly 5 commits
    And main holds exactly the records MoneyWorks holds

  Scenario: A record whose code changes moves to its new file
    Given a MoneyWorks document with 2 names
    And the name "OLDCO" with phone "1" exists in MoneyWorks
    And mwsync has polled
    When name "OLDCO" is renamed to "NEWCO" in MoneyWorks
    And mwsync polls
    Then main holds exactly the records MoneyWorks holds
    And the last commit on main says "Name NEWCO moved from OLDCO"

  Scenario: Codes that move into each other's old names leave no stale file
    Given a MoneyWorks document with 2 names
    And the name "AAA" with phone "1" exists in MoneyWorks
    And the name "BBB" with phone "2" exists in MoneyWorks
    And mwsync has polled
    When name "BBB" is renamed to "CCC" and name "AAA" to "BBB" in the same second
    And mwsync polls
    Then the poll succeeds
    And main holds exactly the records MoneyWorks holds

  Scenario: A rename in a poll that fails part-way leaves no stale file
    Given a MoneyWorks document with 2 names, 1 accounts, 1 products, 1 jobs and 1 transactions
    # Every table is exported, so the poll can fail after some of them.
    And MoneyWorks does not know the function Find
    And the name "AAA" with phone "1" exists in MoneyWorks
    And mwsync has polled
    When name "AAA" is renamed to "ZZZ" in MoneyWorks
    And MoneyWorks refuses export 5 of the next poll until retries run out
    And mwsync polls
    Then the poll fails
    When mwsync polls
    Then the poll succeeds
    And main holds exactly the records MoneyWorks holds

  Scenario: main moved by someone else stops mwsync
    Given a MoneyWorks document with 2 names
    And mwsync has polled
    When someone else commits to main
    And mwsync polls
    Then the poll fails with "Only mwsync may write `main`"
