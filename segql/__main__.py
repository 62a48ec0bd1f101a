from segql.cli import main

main()
