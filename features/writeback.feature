Feature: Write back edits from the changes branch
  Writers commit record files on `changes`. mwsync polls once, checks for conflicts, imports
  the edits, re-reads them, and merges `changes` into main. A writer's save succeeded when
  its commit is in main.

  Background:
    Given a MoneyWorks document with 3 names
    And the name "ACME" with phone "555 0100" exists in MoneyWorks

  Scenario Outline: An edit on changes is applied, verified and merged
    Given the repository is <repository>
    And mwsync has polled
    And a writer sets the phone of name "ACME" to "555 0142" on changes
    When mwsync polls
    Then the poll succeeds
    And MoneyWorks holds "555 0142" as the phone of name "ACME"
    And the writer's commit is in main
    And the status on main says applied
    And the merge commit's parents are main before the write and the writer's commit
    And main holds exactly the records MoneyWorks holds

    Examples:
      | repository             |
      | in memory              |
      | a real bare repository |
      | served over HTTP with an API key |

  Scenario Outline: A conflicting edit applies nothing and is reported on main
    Given the repository is <repository>
    And mwsync has polled
    And a writer sets the phone of name "ACME" to "555 0142" on changes
    And the phone of name "ACME" is changed to "555 0177" in MoneyWorks
    When mwsync polls
    Then the poll succeeds
    And no import reached MoneyWorks
    And MoneyWorks holds "555 0177" as the phone of name "ACME"
    And the writer's commit is not in main
    And the status on main says conflict for field "phone" asked "555 0142" server "555 0177"

    Examples:
      | repository             |
      | in memory              |
      | a real bare repository |
      | served over HTTP with an API key |

  Scenario: The writer rebases on main after a conflict and retries
    Given mwsync has polled
    And a writer sets the phone of name "ACME" to "555 0142" on changes
    And the phone of name "ACME" is changed to "555 0177" in MoneyWorks
    And mwsync has polled
    When the writer rebases changes on main and sets the phone of name "ACME" to "555 0143"
    And mwsync polls
    Then MoneyWorks holds "555 0143" as the phone of name "ACME"
    And the writer's commit is in main

  Scenario: Numbers the server rewrites still verify
    Given mwsync has polled
    And a writer sets the creditlimit of name "ACME" to "1500.5" on changes
    When mwsync polls
    Then the status on main says applied
    And MoneyWorks holds "1500.50" as the creditlimit of name "ACME"
    And the writer's commit is in main

  Scenario: A new name file creates the record
    Given mwsync has polled
    And a writer creates name "FRESH" with name "Fresh Produce Ltd" on changes
    When mwsync polls
    Then the status on main says applied
    And MoneyWorks holds "Fresh Produce Ltd" as the name of name "FRESH"
    And the writer's commit is in main
    And main holds exactly the records MoneyWorks holds

  Scenario: Polling stays suspended for the whole write
    Given mwsync has polled
    And a writer sets the phone of name "ACME" to "555 0142" on changes
    And MoneyWorks changes another name while mwsync re-reads the write
    When mwsync polls
    Then the writer's commit is in main
    And the merge commit's parents are main before the write and the writer's commit
    And main holds exactly the records MoneyWorks holds

  Scenario: A second write queued during the first is handled next, in order
    Given mwsync has polled
    And a writer sets the phone of name "ACME" to "555 0142" on changes
    And a second writer commit sets the name of name "ACME" to "Acme Two" while mwsync re-reads the write
    When mwsync polls
    Then MoneyWorks holds "Acme Two" as the name of name "ACME"
    And MoneyWorks holds "555 0142" as the phone of name "ACME"
    And the writer's commit is in main
    And main has two write-back merges, the first before the second

  Scenario Outline: Bad files on changes are rejected before anything reaches MoneyWorks
    Given mwsync has polled
    And a writer commits <what> on changes
    When mwsync polls
    Then the poll succeeds
    And no import reached MoneyWorks
    And the writer's commit is not in main
    And the status on main says rejected because "<reason>"

    Examples:
      | what                                       | reason                                 |
      | a name file that is not XML                | not well-formed XML                    |
      | a name file with a product record          | expected <name>                        |
      | a file outside the tracked tables          | is not tracked                         |
      | a name file whose code differs from its path | holds key                            |
      | a change to a system field                 | system fields cannot be changed        |
      | a change to the sync state                 | written only by mwsync                 |
      | a name file over the size limit            | limit                                  |
      | a file in a directory that is not a table  | not a record path                      |
      | the deletion of a name file                | deleting a record through changes      |
      | an invalid repo config                     | page_size = 5 is out of range 10..=100 |
      | a name file with the phone element written twice | field <phone> is written 2 times |

  Scenario: A valid config change through changes appears on main
    Given mwsync has polled
    And a writer sets page_size to 20 in the repo config on changes
    When mwsync polls
    Then the status on main says applied
    And the repo config on main has page_size 20
    And the writer's commit is in main
    And the merge commit's config trailer names the config on main

  Scenario: A record MoneyWorks refuses leaves main with the server's truth
    Given transaction "T-POSTED" exists and is posted in MoneyWorks
    And mwsync has polled
    And a writer sets the description of the posted transaction to "changed" on changes
    When mwsync polls
    Then the poll succeeds
    And the status on main says failed because "posted"
    And the writer's commit is not in main
    And main holds exactly the records MoneyWorks holds

  # The live precondition: every planned record is read again from MoneyWorks just before
  # the import, and judged against that copy rather than against main.

  Scenario: A record deleted in MoneyWorks since the writer's base is a conflict, and nothing is created
    Given mwsync has polled
    And a writer sets the phone of name "ACME" to "555 0142" on changes
    And name "ACME" is deleted in MoneyWorks
    When mwsync polls
    Then the poll succeeds
    And no import reached MoneyWorks
    And MoneyWorks has no name "ACME"
    And the writer's commit is not in main
    And the status on main says conflict because "deleted in MoneyWorks since your base"

  Scenario: An edit stamped behind the marker, which the poll cannot see, is a conflict
    Given mwsync has polled
    And the phone of name "ACME" is changed to "555 0177" in MoneyWorks with a clock 1 hour slow
    And a writer sets the phone of name "ACME" to "555 0142" on changes
    When mwsync polls
    Then the poll succeeds
    And no import reached MoneyWorks
    And MoneyWorks holds "555 0177" as the phone of name "ACME"
    And the writer's commit is not in main
    And the status on main says conflict for field "phone" base "555 0100" live "555 0177" asked "555 0142"
    And main holds exactly the records MoneyWorks holds

  Scenario: An edit to another field in the window before the import is reported as a lost race
    Given mwsync has polled
    And a writer sets the phone of name "ACME" to "555 0142" on changes
    And the name of name "ACME" is changed to "Acme Renamed" in MoneyWorks just before the import
    When mwsync polls
    Then the poll succeeds
    And MoneyWorks holds "555 0142" as the phone of name "ACME"
    And MoneyWorks holds "Acme Renamed" as the name of name "ACME"
    And the status on main says lost_race for field "name"
    And the writer's commit is not in main
    And main holds exactly the records MoneyWorks holds

  Scenario: Edits made after the first import batch to records of later batches are never overwritten
    Given the page size is 10
    And 12 more names exist in MoneyWorks
    And mwsync has polled
    And a writer sets the phone of every name to "555 0199" on changes
    And MoneyWorks changes the phone of every name the write has not reached to "555 0177" after the first import
    When mwsync polls
    Then the poll succeeds
    And every name the bookkeeper changed still holds "555 0177" as its phone
    And the status on main reports a conflict for every name the bookkeeper changed
    And the status on main says lost_race
    And the writer's commit is not in main
    And main holds exactly the records MoneyWorks holds

  Scenario: A new file whose code differs only in letter case from a code on main is refused, and ACME is untouched
    Given mwsync has polled
    And a writer creates name "acme" with name "Lowercase Acme" on changes
    When mwsync polls
    Then the poll succeeds
    And no import reached MoneyWorks
    And MoneyWorks holds "ACME Ltd" as the name of name "ACME"
    And MoneyWorks has no name "acme"
    And the writer's commit is not in main
    And the status on main says rejected because "differs only in letter case from ACME"

  Scenario: A new file whose code exists in MoneyWorks in another letter case, not yet on main, is refused
    Given mwsync has polled
    And name "Fresh" is created in MoneyWorks with a clock 1 hour slow
    And a writer creates name "FRESH" with name "Fresh Produce Ltd" on changes
    When mwsync polls
    Then the poll succeeds
    And no import reached MoneyWorks
    And MoneyWorks holds "Made in MoneyWorks" as the name of name "Fresh"
    And MoneyWorks has no name "FRESH"
    And the status on main says rejected because "differs only in letter case from Fresh"

  Scenario: A new file whose code was created in MoneyWorks meanwhile is a conflict
    Given mwsync has polled
    And name "FRESH" is created in MoneyWorks with a clock 1 hour slow
    And a writer creates name "FRESH" with name "Fresh Produce Ltd" on changes
    When mwsync polls
    Then the poll succeeds
    And no import reached MoneyWorks
    And MoneyWorks holds "Made in MoneyWorks" as the name of name "FRESH"
    And the status on main says conflict because "FRESH already exists"

  Scenario: A change set of more files than the limit is refused with one reason naming the limit
    Given mwsync has polled
    And a writer creates 1001 new names on changes
    When mwsync polls
    Then the poll succeeds
    And no import reached MoneyWorks
    And the writer's commit is not in main
    And the status on main says rejected with the single reason "1001 files, more than max_write_files = 1000"

  Scenario: A change of 1,000 records is imported in batches of the page size and verified in batched exports
    Given 996 more names exist in MoneyWorks
    And mwsync has polled
    And a writer sets the phone of every name to "555 0199" on changes
    When mwsync handles the write, counting its requests
    Then the write made 20 imports, 59 exports and 1 clock read
    And MoneyWorks holds "555 0199" as the phone of every name the writer changed
    And the status on main says applied
    And the writer's commit is in main
    And main holds exactly the records MoneyWorks holds

  Scenario Outline: A multi-line value written with <breaks> line breaks is stored with CR and reported applied
    Given mwsync has polled
    And a writer sets the address1 of name "ACME" to the lines "1 Road" and "Town" joined by <breaks> on changes
    When mwsync polls
    Then the poll succeeds
    And the status on main says applied
    And MoneyWorks holds the lines "1 Road" and "Town" joined by CR as the address1 of name "ACME"
    And the writer's commit is in main
    And main holds exactly the records MoneyWorks holds

    Examples:
      | breaks     |
      | LF         |
      | CRLF       |
      | references |

  Scenario: A changes branch with no common history with main is rejected with one reason
    Given mwsync has polled
    And a writer pushes to changes a commit with no common history with main that sets the phone of name "ACME" to "555 0142"
    When mwsync polls
    Then the poll succeeds
    And no import reached MoneyWorks
    And the writer's commit is not in main
    And the status on main says rejected with the single reason "no common history with main"

  # The same against the real binary, killed where a crash matters.

  Scenario: The real binary reports a record deleted in MoneyWorks as a conflict and creates nothing
    Given a git server over HTTP that requires an API key
    And the mwsync binary has run once against it with the API key
    And a writer sets the phone of name "ACME" to "555 0142" on changes over HTTP
    And name "ACME" is deleted in MoneyWorks
    When the mwsync binary runs once against it with the API key
    Then it exits with code 0
    And MoneyWorks received 0 imports
    And MoneyWorks has no name "ACME"
    And the status on main over HTTP says conflict because "deleted in MoneyWorks since your base"

  Scenario: A crash between import batches resumes without importing any record twice
    Given the page size is 10
    And 21 more names exist in MoneyWorks
    And a git server over HTTP that requires an API key
    And the mwsync binary has run once against it with the API key
    And a writer sets the phone of every name to "555 0199" on changes over HTTP
    When the mwsync binary is killed after import batch 1
    Then MoneyWorks received 1 import
    When the mwsync binary runs once against it with the API key
    Then it exits with code 0
    And MoneyWorks received 3 imports
    And MoneyWorks holds "555 0199" as the phone of every name
    And the writer's commit is in main over HTTP
    And main over HTTP holds exactly the records MoneyWorks holds
