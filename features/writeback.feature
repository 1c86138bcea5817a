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
