from dbx_promote.cli import main

main()
